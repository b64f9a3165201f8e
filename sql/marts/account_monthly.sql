-- Grain: one row per account and calendar month with at least one day in its statement period.
-- Balances come from account_daily_balance (days inside the period only), flows from
-- stg_account_month_flows, the fixed-day ABB day sets from the abb_day_sets parameter
-- table: a set's day past the month's end falls on its last day. Without listed months
-- (coverage unknown) a month needs a transaction to count as complete.

WITH set_lookup AS (
    SELECT
        m.days_in_month,
        least(s.day_of_month, m.days_in_month) AS day_of_month,
        list(DISTINCT s.day_set) AS day_sets
    FROM abb_day_sets AS s
    CROSS JOIN (VALUES (28), (29), (30), (31)) AS m (days_in_month)
    GROUP BY ALL
),

periods AS (
    SELECT entity_id, account_id, listed_months, od_limit
    FROM stg_account_periods
),

balances AS (
    SELECT
        entity_id,
        account_id,
        month,
        count(*) AS days_in_period,
        arg_min(opening_balance_inr, balance_date) AS opening_balance_inr,
        arg_max(eod_balance_inr, balance_date) AS closing_balance_inr,
        min(eod_balance_inr) AS min_eod_inr,
        max(eod_balance_inr) AS max_eod_inr,
        money_median(eod_balance_inr) AS median_eod_inr,
        money_mean(eod_balance_inr) AS abb_daily_inr,
        count(*) FILTER (WHERE eod_balance_inr < 0) AS negative_eod_days,
        sum(greatest(-eod_balance_inr, 0)) AS overdrawn_sum,
        list(eod_balance_inr) FILTER (WHERE eod_balance_inr < 0) AS negative_eods
    FROM account_daily_balance
    GROUP BY entity_id, account_id, month
),

fixed_day_abb AS (  -- only the days some set samples meet the (tiny) lookup
    SELECT
        d.entity_id,
        d.account_id,
        d.month,
        money_mean(CASE WHEN list_contains(l.day_sets, '5_15_25_last') THEN d.eod_balance_inr END)
            AS abb_5_15_25_last_inr,
        money_mean(
            CASE WHEN list_contains(l.day_sets, '1_5_10_15_20_25_last') THEN d.eod_balance_inr END
        ) AS abb_1_5_10_15_20_25_last_inr
    FROM account_daily_balance AS d
    INNER JOIN set_lookup AS l
        ON l.days_in_month = dayofmonth(last_day(d.balance_date))
        AND l.day_of_month = dayofmonth(d.balance_date)
    GROUP BY d.entity_id, d.account_id, d.month
),

flows AS (
    SELECT
        entity_id,
        account_id,
        month,
        sum(amount) FILTER (WHERE direction = 'credit') AS inflow_inr,
        sum(transaction_count) FILTER (WHERE direction = 'credit') AS inflow_count,
        sum(amount) FILTER (WHERE direction = 'debit') AS outflow_inr,
        sum(transaction_count) FILTER (WHERE direction = 'debit') AS outflow_count
    FROM stg_account_month_flows
    GROUP BY entity_id, account_id, month
)

SELECT
    b.entity_id,
    b.account_id,
    b.month,
    dayofmonth(last_day(b.month)) AS days_in_month,
    b.days_in_period,
    b.days_in_period = dayofmonth(last_day(b.month))
        AND (
            list_contains(p.listed_months, strftime(b.month, '%Y-%m'))
            OR (
                len(p.listed_months) = 0
                AND coalesce(f.inflow_count, 0) + coalesce(f.outflow_count, 0) > 0
            )
        ) AS is_complete_month,
    CAST(coalesce(f.inflow_inr, 0) AS DECIMAL(18, 2)) AS inflow_inr,
    CAST(coalesce(f.inflow_count, 0) AS BIGINT) AS inflow_count,
    CAST(coalesce(f.outflow_inr, 0) AS DECIMAL(18, 2)) AS outflow_inr,
    CAST(coalesce(f.outflow_count, 0) AS BIGINT) AS outflow_count,
    CAST(coalesce(f.inflow_inr, 0) - coalesce(f.outflow_inr, 0) AS DECIMAL(18, 2)) AS net_flow_inr,
    b.opening_balance_inr,
    b.closing_balance_inr,
    b.min_eod_inr,
    b.max_eod_inr,
    b.median_eod_inr,
    b.abb_daily_inr,
    x.abb_5_15_25_last_inr,
    x.abb_1_5_10_15_20_25_last_inr,
    b.negative_eod_days,
    CAST(p.od_limit AS DECIMAL(18, 2)) AS od_limit_inr,
    CASE WHEN p.od_limit IS NOT NULL THEN
        CAST(b.overdrawn_sum AS DOUBLE) / b.days_in_period / CAST(p.od_limit AS DOUBLE)
    END AS od_utilisation,
    CASE WHEN p.od_limit IS NOT NULL THEN
        CAST(len(list_filter(coalesce(b.negative_eods, []), lambda e: e < -p.od_limit)) AS BIGINT)
    END AS days_over_od_limit
FROM balances AS b
LEFT JOIN periods AS p USING (entity_id, account_id)
LEFT JOIN fixed_day_abb AS x USING (entity_id, account_id, month)
LEFT JOIN flows AS f USING (entity_id, account_id, month)
ORDER BY b.entity_id, b.account_id, b.month
