"""bankconnect-etl: land FinBox BankConnect data in a lender's DuckLake warehouse.

The library never imports Prefect; the flows in ``flows/`` are thin wrappers around it.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "connect"]


def __getattr__(name: str) -> object:
    # ``bankconnect_etl.connect`` without importing DuckDB and pandas for every command.
    if name == "connect":
        from bankconnect_etl.warehouse import connect

        return connect
    raise AttributeError(f"module 'bankconnect_etl' has no attribute {name!r}")
