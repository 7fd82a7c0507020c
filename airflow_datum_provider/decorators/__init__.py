"""Airflow adapters."""
