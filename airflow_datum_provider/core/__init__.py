"""The Airflow-free core: specs, glob, store, planning, worker, merge.

Nothing below this package imports ``airflow``; a test enforces it.
"""
