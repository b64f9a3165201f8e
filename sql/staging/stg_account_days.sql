-- Grain: one row per account and calendar day with at least one transaction.
-- materialized: table
-- Statement row order (txn_seq) decides the day's first and last row, never the hash.

SELECT
    k.account_key,
    t.txn_date AS balance_date,
    arg_min(t.balance - t.signed_amount, t.txn_seq) AS opening_balance,
    arg_max(t.balance, t.txn_seq) AS eod_balance,
    count(*) AS transaction_count
FROM stg_transactions AS t
INNER JOIN stg_account_keys AS k USING (entity_id, account_id)
GROUP BY k.account_key, t.txn_date
