-- Grain: one row per account and calendar month, as in account_monthly.
-- EMIs and disbursals come from stg_lender_flows (each transaction once, by hash). Income
-- is the month's salary credits when the account has any salary credit, otherwise its
-- credits less self transfers, loan disbursals, refunds, bounce reversals and
-- international arbitrage. FOIR = EMIs / income.

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

combined AS (
    SELECT
        m.entity_id,
        m.account_id,
        m.month,
        m.is_complete_month,
        CAST(coalesce(l.emi_inr, 0) AS DECIMAL(18, 2)) AS emi_inr,
        coalesce(l.emi_count, 0) AS emi_count,
        CAST(coalesce(l.loan_disbursal_inr, 0) AS DECIMAL(18, 2)) AS loan_disbursal_inr,
        coalesce(l.loan_disbursal_count, 0) AS loan_disbursal_count,
        CASE WHEN s.account_id IS NULL THEN 'credits' ELSE 'salary' END AS income_basis,
        CAST(coalesce(sal.salary_income, 0) AS DECIMAL(18, 2)) AS salary_income_inr,
        CAST(coalesce(c.credit_income, 0) AS DECIMAL(18, 2)) AS credit_income_inr
    FROM months AS m
    LEFT JOIN lender AS l USING (entity_id, account_id, month)
    LEFT JOIN salaried AS s USING (entity_id, account_id)
    LEFT JOIN salary AS sal USING (entity_id, account_id, month)
    LEFT JOIN income_credits AS c USING (entity_id, account_id, month)
)

SELECT
    entity_id,
    account_id,
    month,
    is_complete_month,
    emi_inr,
    emi_count,
    loan_disbursal_inr,
    loan_disbursal_count,
    income_basis,
    salary_income_inr,
    credit_income_inr,
    CASE income_basis WHEN 'salary' THEN salary_income_inr ELSE credit_income_inr END AS income_inr,
    CAST(emi_inr AS DOUBLE)
        / nullif(CAST(CASE income_basis WHEN 'salary' THEN salary_income_inr ELSE credit_income_inr END AS DOUBLE), 0)
        AS foir
FROM combined
ORDER BY entity_id, account_id, month
