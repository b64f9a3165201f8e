-- Grain: one row per account, calendar month, direction and channel with at least one transaction.
-- The per-channel breakdown of account_monthly's inflows and outflows. Unsorted (large).

SELECT
    entity_id,
    account_id,
    month,
    direction,
    channel,
    CAST(amount AS DECIMAL(18, 2)) AS amount_inr,
    transaction_count
FROM stg_account_month_flows
