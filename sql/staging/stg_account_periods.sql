-- Grain: one row per account with transactions: its statement period, listed months and overdraft limit.
-- materialized: table
-- The analysis endpoints send no statement date range, so the period runs from the
-- account's first to its last transaction day; the accounts endpoint's months say which
-- calendar months a statement covers.

WITH activity AS (
    SELECT
        account_key,
        min(balance_date) AS first_date,
        max(balance_date) AS last_date,
        arg_min(opening_balance, balance_date) AS opening_balance
    FROM stg_account_days
    GROUP BY account_key
),

listed AS (
    SELECT entity_id, account_id, months
    FROM accounts
),

limits AS (
    SELECT entity_id, account_id, max(od_limit) AS od_limit
    FROM identities
    WHERE od_limit > 0
    GROUP BY entity_id, account_id
)

SELECT
    k.entity_id,
    k.account_id,
    k.account_key,
    a.first_date,
    a.last_date,
    a.opening_balance,
    coalesce(l.months, []) AS listed_months,
    lim.od_limit
FROM activity AS a
INNER JOIN stg_account_keys AS k USING (account_key)
LEFT JOIN listed AS l ON l.entity_id = k.entity_id AND l.account_id = k.account_id
LEFT JOIN limits AS lim ON lim.entity_id = k.entity_id AND lim.account_id = k.account_id
