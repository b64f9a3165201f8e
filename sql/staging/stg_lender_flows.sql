-- Grain: one row per EMI debit or loan disbursal credit (entity and transaction hash), however many sources name it.
-- materialized: table
-- Sources: transactions with description lender_transaction, the lender_transactions
-- endpoint, and the debit transactions of recurring auto-debit (NACH/ECS) sets. A row
-- takes its values from the first source naming it, in that order.

WITH named AS (
    SELECT entity_id, account_id, hash, txn_date, transaction_type, amount, 1 AS source_rank
    FROM stg_marked_transactions
    WHERE description = 'lender_transaction'

    UNION ALL

    SELECT entity_id, account_id, hash, txn_date, transaction_type, amount, 2 AS source_rank
    FROM lender_transactions

    UNION ALL

    SELECT m.entity_id, m.account_id, m.hash, m.txn_date, m.transaction_type, m.amount, 3 AS source_rank
    FROM recurring_set_transactions AS m
    INNER JOIN recurring_sets AS s ON s.set_id = m.set_id
    WHERE s.direction = 'debit'
        AND s.channel = 'auto_debit_payment'
        AND m.transaction_type = 'debit'
)

SELECT
    entity_id,
    hash,
    arg_min(account_id, source_rank) AS account_id,
    arg_min(txn_date, source_rank) AS txn_date,
    CAST(date_trunc('month', arg_min(txn_date, source_rank)) AS DATE) AS month,
    CASE arg_min(transaction_type, source_rank)
        WHEN 'debit' THEN 'emi'
        ELSE 'loan_disbursal'
    END AS flow,
    arg_min(amount, source_rank) AS amount
FROM named
GROUP BY entity_id, hash
