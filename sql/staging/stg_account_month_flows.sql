-- Grain: one row per account, calendar month, direction and channel with at least one transaction.
-- materialized: table
-- One pass over the transactions for every monthly flow: per channel, and the part of the
-- credits that counts as income when the account has no salary. Not income: self
-- transfers, loan disbursals (lender_transaction credits, or named by the lender
-- endpoint), refunds and NEFT returns, bounce reversals, international arbitrage,
-- investment redemptions.

WITH disbursals AS (
    SELECT entity_id, hash
    FROM stg_lender_flows
    WHERE flow = 'loan_disbursal'
),

classified AS (
    SELECT
        t.entity_id,
        t.account_id,
        t.month,
        t.transaction_type,
        t.transaction_channel,
        t.amount,
        t.transaction_type = 'credit'
            AND d.hash IS NULL
            AND t.transaction_channel NOT IN (
                'self_transfer',
                'refund',
                'auto_debit_payment_bounce',
                'inward_cheque_bounce',
                'outward_cheque_bounce',
                'international_transaction_arbitrage',
                'investment_cashin'
            )
            AND t.description NOT IN ('self_transfer', 'neft_return', 'lender_transaction')
            AS is_income_credit
    FROM stg_transactions AS t
    LEFT JOIN disbursals AS d ON d.entity_id = t.entity_id AND d.hash = t.hash
)

SELECT
    entity_id,
    account_id,
    month,
    transaction_type AS direction,
    transaction_channel AS channel,
    sum(amount) AS amount,
    count(*) AS transaction_count,
    coalesce(sum(amount) FILTER (WHERE is_income_credit), 0) AS income_amount
FROM classified
GROUP BY entity_id, account_id, month, transaction_type, transaction_channel
