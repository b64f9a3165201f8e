-- Grain: one row per transaction that may be a lender flow or a bounce signal.
-- materialized: table
-- One scan of the transactions serves stg_lender_flows and stg_bounce_signals.

SELECT *
FROM stg_transactions
WHERE description IN (
        'lender_transaction', 'ach_bounce_charge', 'chq_bounce_charge', 'chq_bounce_insuff_funds'
    )
    OR transaction_channel IN (
        'auto_debit_payment_bounce', 'inward_cheque_bounce', 'outward_cheque_bounce'
    )
