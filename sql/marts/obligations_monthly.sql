-- Grain: one row per account and calendar month, as in account_monthly.
-- EMIs and disbursals come from stg_lender_flows (each transaction once, by hash). Income
-- is the month's salary credits when the account has any salary credit, otherwise its
-- credits less self transfers, loan disbursals, refunds, bounce reversals, international
-- arbitrage and investment redemptions, and less deposited cheques returned.
-- An instalment the bank never debited (the EMI bounced and only its return charge shows)
-- is still owed: a monthly auto-debit EMI set with no debit in a month between its first
-- and last debit has missed that month, valued at the set's median amount.
-- FOIR = EMIs due (debited and missed) / income.

WITH months AS (
    SELECT entity_id, account_id, month, is_complete_month
    FROM account_monthly
),

lender AS (
    SELECT
        entity_id,
        account_id,
        month,
        sum(amount) FILTER (WHERE flow = 'emi') AS emi_inr,
        count(*) FILTER (WHERE flow = 'emi') AS emi_count,
        sum(amount) FILTER (WHERE flow = 'loan_disbursal') AS loan_disbursal_inr,
        count(*) FILTER (WHERE flow = 'loan_disbursal') AS loan_disbursal_count
    FROM stg_lender_flows
    GROUP BY entity_id, account_id, month
),

set_debit_months AS (  -- the months each auto-debit (NACH/ECS) set debited
    SELECT DISTINCT
        s.set_id,
        s.entity_id,
        s.account_id,
        s.median_amount,
        CAST(date_trunc('month', m.txn_date) AS DATE) AS month
    FROM recurring_sets AS s
    INNER JOIN recurring_set_transactions AS m ON m.set_id = s.set_id
    WHERE s.direction = 'debit'
        AND s.channel = 'auto_debit_payment'
        AND m.transaction_type = 'debit'
),

set_steps AS (  -- months from each debit month of a set to its next
    SELECT
        *,
        date_diff('month', month, lead(month) OVER (PARTITION BY set_id ORDER BY month)) AS step
    FROM set_debit_months
),

emi_sets AS (  -- monthly: a debit in at least half of the months the set spans, and at
    -- least half of its steps one month (a quarterly or bi-monthly set is not monthly)
    SELECT
        set_id,
        entity_id,
        account_id,
        any_value(median_amount) AS median_amount,
        min(month) AS first_month,
        max(month) AS last_month
    FROM set_steps
    GROUP BY set_id, entity_id, account_id
    HAVING 2 * count(*) >= date_diff('month', min(month), max(month)) + 1
        AND 2 * count(*) FILTER (WHERE step = 1) >= count(step)
),

missed AS (
    SELECT
        s.entity_id,
        s.account_id,
        m.month,
        count(*) AS missed_emi_count,
        sum(s.median_amount) AS missed_emi_inr
    FROM emi_sets AS s
    INNER JOIN months AS m
        ON m.entity_id = s.entity_id
        AND m.account_id = s.account_id
        AND m.month BETWEEN s.first_month AND s.last_month
    LEFT JOIN set_debit_months AS d ON d.set_id = s.set_id AND d.month = m.month
    WHERE d.set_id IS NULL
    GROUP BY s.entity_id, s.account_id, m.month
),

salary AS (
    SELECT
        entity_id,
        account_id,
        CAST(date_trunc('month', txn_date) AS DATE) AS month,
        sum(amount) AS salary_income
    FROM salary_transactions
    GROUP BY ALL
),

salaried AS (
    SELECT DISTINCT entity_id, account_id
    FROM salary_transactions
),

income_credits AS (
    SELECT entity_id, account_id, month, sum(income_amount) AS credit_income
    FROM stg_account_month_flows
    GROUP BY entity_id, account_id, month
),

returned_deposits AS (  -- cheques paid in that came back: the credit was never income
    SELECT
        entity_id,
        account_id,
        CAST(date_trunc('month', txn_date) AS DATE) AS month,
        sum(amount) AS returned
    FROM stg_bounce_signals
    WHERE family = 'cheque' AND role = 'return' AND transaction_type = 'debit'
    GROUP BY ALL
),

combined AS (
    SELECT
        m.entity_id,
        m.account_id,
        m.month,
        m.is_complete_month,
        CAST(coalesce(l.emi_inr, 0) AS DECIMAL(18, 2)) AS emi_inr,
        coalesce(l.emi_count, 0) AS emi_count,
        CAST(coalesce(x.missed_emi_inr, 0) AS DECIMAL(18, 2)) AS missed_emi_inr,
        coalesce(x.missed_emi_count, 0) AS missed_emi_count,
        CAST(coalesce(l.loan_disbursal_inr, 0) AS DECIMAL(18, 2)) AS loan_disbursal_inr,
        coalesce(l.loan_disbursal_count, 0) AS loan_disbursal_count,
        CASE WHEN s.account_id IS NULL THEN 'credits' ELSE 'salary' END AS income_basis,
        CAST(coalesce(sal.salary_income, 0) AS DECIMAL(18, 2)) AS salary_income_inr,
        CAST(coalesce(c.credit_income, 0) - coalesce(r.returned, 0) AS DECIMAL(18, 2))
            AS credit_income_inr
    FROM months AS m
    LEFT JOIN lender AS l USING (entity_id, account_id, month)
    LEFT JOIN missed AS x USING (entity_id, account_id, month)
    LEFT JOIN salaried AS s USING (entity_id, account_id)
    LEFT JOIN salary AS sal USING (entity_id, account_id, month)
    LEFT JOIN income_credits AS c USING (entity_id, account_id, month)
    LEFT JOIN returned_deposits AS r USING (entity_id, account_id, month)
)

SELECT
    entity_id,
    account_id,
    month,
    is_complete_month,
    emi_inr,
    emi_count,
    missed_emi_inr,
    missed_emi_count,
    CAST(emi_inr + missed_emi_inr AS DECIMAL(18, 2)) AS emi_due_inr,
    loan_disbursal_inr,
    loan_disbursal_count,
    income_basis,
    salary_income_inr,
    credit_income_inr,
    CASE income_basis WHEN 'salary' THEN salary_income_inr ELSE credit_income_inr END AS income_inr,
    CAST(emi_inr + missed_emi_inr AS DOUBLE)
        / nullif(CAST(CASE income_basis WHEN 'salary' THEN salary_income_inr ELSE credit_income_inr END AS DOUBLE), 0)
        AS foir
FROM combined
ORDER BY entity_id, account_id, month
