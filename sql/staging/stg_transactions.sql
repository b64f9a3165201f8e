-- Grain: one row per transaction (the transactions table), with its month and signed amount.

SELECT
    entity_id,
    account_id,
    statement_id,
    txn_seq,
    hash,
    txn_date,
    CAST(date_trunc('month', txn_date) AS DATE) AS month,
    transaction_type,
    amount,
    balance,
    CASE transaction_type WHEN 'credit' THEN amount ELSE -amount END AS signed_amount,
    transaction_channel,
    description,
    transaction_note
FROM transactions
