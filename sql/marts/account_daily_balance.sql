-- Grain: one row per account and calendar day of its statement period.
-- The period runs from the account's first to its last transaction day (the API sends no
-- statement date range). Each day with transactions spreads over the quiet days up to the
-- next one: their opening and end-of-day balances are its end-of-day balance.
-- Not an ASOF join: in DuckDB 1.5.5 an ASOF join on a temp table created in the same
-- transaction takes minutes instead of a fraction of a second. Unsorted: sorting these
-- rows would cost more than the rest of the model.

WITH activity AS (
    SELECT
        account_key,
        balance_date,
        opening_balance,
        eod_balance,
        transaction_count,
        lead(balance_date) OVER (PARTITION BY account_key ORDER BY balance_date)
            AS next_activity_date
    FROM stg_account_days
),

spread AS (
    SELECT
        *,
        CAST(
            unnest(
                generate_series(
                    balance_date,
                    coalesce(next_activity_date - 1, balance_date),
                    INTERVAL 1 DAY
                )
            ) AS DATE
        ) AS day
    FROM activity
)

SELECT
    k.entity_id,
    k.account_id,
    s.day AS balance_date,
    CAST(date_trunc('month', s.day) AS DATE) AS month,
    CAST(
        CASE WHEN s.day = s.balance_date THEN s.opening_balance ELSE s.eod_balance END
        AS DECIMAL(18, 2)
    ) AS opening_balance_inr,
    CAST(s.eod_balance AS DECIMAL(18, 2)) AS eod_balance_inr,
    CASE WHEN s.day = s.balance_date THEN s.transaction_count ELSE 0 END AS transaction_count,
    s.day <> s.balance_date AS is_carried_forward
FROM spread AS s
INNER JOIN stg_account_keys AS k USING (account_key)
