-- Grain: one row per account and salary month (the month the salary is for, the API's month_year).
-- The per-account columns (months with salary, gaps, months since the last one, credit-day
-- spread, amount flags) repeat on each of the account's rows. The spread is the smaller of
-- two: of each month's first credit day, and of its distance from the last day of the month
-- it is for. So a salary paid on the 31st, the 1st and the 29th is three days apart, not
-- thirty, and one paid on the 28th every month none, not three (February). A month's
-- salary is due by the latest its salary has come (days after the end of the month it is
-- for): a statement that ends before pay day owes nothing for its last months.

WITH credits AS (
    SELECT entity_id, account_id, salary_month, hash, txn_date, amount, clean_transaction_note
    FROM salary_transactions
),

monthly AS (
    SELECT
        entity_id,
        account_id,
        salary_month,
        sum(amount) AS salary_inr,
        count(*) AS credit_count,
        min(txn_date) AS first_credit_date,
        min(txn_date) - last_day(salary_month) AS days_after_month_end,
        first(clean_transaction_note ORDER BY amount DESC, txn_date, hash) AS employer
    FROM credits
    GROUP BY entity_id, account_id, salary_month
),

statement_ends AS (
    SELECT
        entity_id,
        account_id,
        last_date,
        CAST(date_trunc('month', last_date) AS DATE) AS last_month
    FROM stg_account_periods
),

per_account AS (
    SELECT
        entity_id,
        account_id,
        count(*) AS months_with_salary,
        CAST(datediff('month', min(salary_month), max(salary_month)) + 1 - count(*) AS BIGINT)
            AS salary_gap_months,
        least(
            max(days_after_month_end) - min(days_after_month_end),
            max(dayofmonth(first_credit_date)) - min(dayofmonth(first_credit_date))
        ) AS credit_day_spread_days,
        max(salary_month) AS last_salary_month,
        max(days_after_month_end) AS latest_pay_days,
        count(*) >= 3 AND count(DISTINCT salary_inr) = 1 AS amount_unchanged,  -- 2 is no pattern
        bool_and(salary_inr % 1000 = 0) AS amount_multiple_of_1000
    FROM monthly
    GROUP BY entity_id, account_id
)

SELECT
    m.entity_id,
    m.account_id,
    m.salary_month,
    CAST(m.salary_inr AS DECIMAL(18, 2)) AS salary_inr,
    m.credit_count,
    m.first_credit_date,
    dayofmonth(m.first_credit_date) AS credit_day,
    m.employer,
    a.months_with_salary,
    a.salary_gap_months,
    CAST(greatest(datediff('month', a.last_salary_month, e.last_month), 0) AS BIGINT)
        AS months_since_last_salary,
    -- the last month whose salary was due by the statement's end: the one whose last day
    -- plus latest_pay_days falls on or before last_date
    CAST(greatest(datediff(
        'month',
        a.last_salary_month,
        date_trunc('month', e.last_date - CAST(a.latest_pay_days - 1 AS INTEGER))
            - INTERVAL 1 MONTH
    ), 0) AS BIGINT) AS salary_months_overdue,
    a.credit_day_spread_days,
    a.amount_unchanged,
    a.amount_multiple_of_1000
FROM monthly AS m
INNER JOIN per_account AS a USING (entity_id, account_id)
LEFT JOIN statement_ends AS e USING (entity_id, account_id)
ORDER BY m.entity_id, m.account_id, m.salary_month
