"""``python -m airflow_datum_provider.cli``: the same as ``datumctl``."""

from airflow_datum_provider.cli.main import main

raise SystemExit(main())
