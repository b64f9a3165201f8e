"""bankconnect-etl: land FinBox BankConnect data in a lender's DuckLake warehouse.

The library never imports Prefect; the flows in ``flows/`` are thin wrappers around it.
"""

__version__ = "0.1.0"
