-- Grain: one row per entity (every entity in entities, with or without statements).
-- An entity-month adds up the entity's accounts; it is complete when every account with
-- days in that month covers the whole month. "Last N complete months" are the entity's N
-- latest complete months (fewer when it has fewer); bounce windows are the N calendar
-- months ending with the month of the entity's last transaction, and count the applicant's
-- own bounces (a cheque deposited with the applicant and returned is the payer's: counted
-- apart). Without a transaction, what the transactions would tell (bounces, negative days,
-- salary, breaks) is unknown (null), not zero.

WITH entity AS (
    SELECT entity_id, link_id, sync_status, last_synced_at
    FROM entities
),

account_counts AS (
    SELECT entity_id, count(*) AS account_count
    FROM accounts
    GROUP BY entity_id
),

statement_counts AS (
    SELECT
        entity_id,
        count(*) AS statement_count,
        count(*) FILTER (WHERE status = 'failed') AS failed_statement_count,
        count(*) FILTER (WHERE is_fraud) AS fraudulent_statement_count
    FROM statements
    GROUP BY entity_id
),

entity_months AS (  -- ABB over the accounts that are not overdraft accounts (od_utilisation)
    SELECT
        entity_id,
        month,
        bool_and(is_complete_month) AS is_complete,
        sum(abb_daily_inr) FILTER (WHERE od_limit_inr IS NULL) AS abb_inr
    FROM account_monthly
    GROUP BY entity_id, month
),

entity_flows AS (
    SELECT
        entity_id,
        month,
        sum(emi_due_inr) AS obligations_inr,
        sum(income_inr) AS income_inr,
        sum(loan_disbursal_inr) AS loan_disbursal_inr,
        sum(loan_disbursal_count) AS loan_disbursal_count
    FROM obligations_monthly
    GROUP BY entity_id, month
),

recent AS (
    SELECT
        m.entity_id,
        m.abb_inr,
        f.obligations_inr,
        f.income_inr,
        row_number() OVER (PARTITION BY m.entity_id ORDER BY m.month DESC) AS recency
    FROM entity_months AS m
    INNER JOIN entity_flows AS f USING (entity_id, month)
    WHERE m.is_complete
),

windows AS (
    SELECT
        entity_id,
        money_mean(CASE WHEN recency <= 6 THEN income_inr END) AS avg_monthly_income_inr,
        money_mean(CASE WHEN recency <= 6 THEN obligations_inr END) AS avg_monthly_obligations_inr,
        CAST(sum(obligations_inr) FILTER (WHERE recency <= 6) AS DOUBLE)
            / nullif(CAST(sum(income_inr) FILTER (WHERE recency <= 6) AS DOUBLE), 0) AS foir,
        money_mean(CASE WHEN recency <= 3 THEN abb_inr END) AS abb_last_3_complete_months_inr,
        money_mean(CASE WHEN recency <= 6 THEN abb_inr END) AS abb_last_6_complete_months_inr
    FROM recent
    GROUP BY entity_id
),

coverage AS (
    SELECT
        entity_id,
        count(*) AS months_covered,
        count(*) FILTER (WHERE is_complete) AS complete_months
    FROM entity_months
    GROUP BY entity_id
),

balances AS (
    SELECT
        entity_id,
        sum(negative_eod_days) FILTER (WHERE od_limit_inr IS NULL) AS negative_eod_days,
        sum(od_utilisation * days_in_period) FILTER (WHERE od_limit_inr IS NOT NULL)
            / nullif(sum(days_in_period) FILTER (WHERE od_limit_inr IS NOT NULL), 0)
            AS od_utilisation
    FROM account_monthly
    GROUP BY entity_id
),

dates AS (
    SELECT
        entity_id,
        min(first_date) AS first_txn_date,
        max(last_date) AS last_txn_date,
        CAST(date_trunc('month', max(last_date)) AS DATE) AS last_month
    FROM stg_account_periods
    GROUP BY entity_id
),

running AS (  -- the EMIs due now (a loan's first often falls in a partial last month), and
    -- the loans received lately: new debt, whose proceeds also lift the balances ABB averages
    SELECT
        f.entity_id,
        max(f.obligations_inr) FILTER (WHERE f.month > d.last_month - INTERVAL 3 MONTH)
            AS current_monthly_obligations_inr,
        sum(f.loan_disbursal_count) AS loan_disbursals_last_6_months,
        sum(f.loan_disbursal_inr) AS loan_disbursals_last_6_months_inr
    FROM entity_flows AS f
    INNER JOIN dates AS d USING (entity_id)
    WHERE f.month > d.last_month - INTERVAL 6 MONTH
    GROUP BY f.entity_id
),

bases AS (
    SELECT
        entity_id,
        CASE WHEN count(DISTINCT income_basis) = 1 THEN any_value(income_basis) ELSE 'mixed' END
            AS income_basis
    FROM obligations_monthly
    GROUP BY entity_id
),

bounces AS (
    SELECT
        b.entity_id,
        count(*) FILTER (
            WHERE b.month > d.last_month - INTERVAL 3 MONTH AND b.event_type <> 'cheque_deposited'
        ) AS bounces_last_3_months,
        count(*) FILTER (
            WHERE b.month > d.last_month - INTERVAL 6 MONTH AND b.event_type <> 'cheque_deposited'
        ) AS bounces_last_6_months,
        count(*) FILTER (WHERE b.month > d.last_month - INTERVAL 6 MONTH AND b.severity = 'high')
            AS high_severity_bounces_last_6_months,
        count(*) FILTER (
            WHERE b.month > d.last_month - INTERVAL 6 MONTH AND b.event_type = 'cheque_deposited'
        ) AS deposited_cheque_returns_last_6_months
    FROM bounce_events AS b
    INNER JOIN dates AS d USING (entity_id)
    GROUP BY b.entity_id
),

salary_accounts AS (
    SELECT DISTINCT
        entity_id,
        account_id,
        months_with_salary,
        salary_gap_months,
        salary_months_overdue,
        credit_day_spread_days,
        amount_unchanged,
        amount_multiple_of_1000
    FROM salary_monthly
),

salary AS (
    SELECT
        entity_id,
        max(months_with_salary) AS salary_months,
        first(
            CASE
                WHEN salary_months_overdue >= 1 THEN 'stopped'
                WHEN months_with_salary < 3 THEN 'short'
                WHEN salary_gap_months = 0 AND credit_day_spread_days <= 5 THEN 'stable'
                ELSE 'irregular'
            END
            ORDER BY months_with_salary DESC, account_id
        ) AS salary_stability,
        first(amount_unchanged ORDER BY months_with_salary DESC, account_id)
            AS salary_amount_unchanged,
        first(amount_multiple_of_1000 ORDER BY months_with_salary DESC, account_id)
            AS salary_multiple_of_1000
    FROM salary_accounts
    GROUP BY entity_id
),

cash AS (
    SELECT
        entity_id,
        CAST(coalesce(sum(amount_inr) FILTER (WHERE channel = 'cash_deposit'), 0) AS DOUBLE)
            / nullif(CAST(sum(amount_inr) AS DOUBLE), 0) AS cash_deposit_share
    FROM account_channel_monthly
    WHERE direction = 'credit'
    GROUP BY entity_id
),

fraud AS (
    SELECT
        entity_id,
        count(*) AS api_fraud_flags,
        list(DISTINCT fraud_type ORDER BY fraud_type) AS api_fraud_types
    FROM fraud_flags
    GROUP BY entity_id
),

breaks AS (  -- a break across a missing statement's months is no sign of tampering
    SELECT entity_id, count(*) AS balance_breaks
    FROM balance_integrity
    WHERE NOT after_statement_gap
    GROUP BY entity_id
)

SELECT
    e.entity_id,
    e.link_id,
    e.sync_status,
    e.last_synced_at,
    coalesce(a.account_count, 0) AS account_count,
    coalesce(s.statement_count, 0) AS statement_count,
    coalesce(s.failed_statement_count, 0) AS failed_statement_count,
    d.first_txn_date,
    d.last_txn_date,
    coalesce(c.months_covered, 0) AS months_covered,
    coalesce(c.complete_months, 0) AS complete_months,
    ib.income_basis,
    w.avg_monthly_income_inr,
    w.avg_monthly_obligations_inr,
    w.foir,
    CAST(r.current_monthly_obligations_inr AS DECIMAL(18, 2)) AS current_monthly_obligations_inr,
    CAST(r.current_monthly_obligations_inr AS DOUBLE)
        / nullif(CAST(w.avg_monthly_income_inr AS DOUBLE), 0) AS current_foir,
    CASE
        WHEN d.entity_id IS NOT NULL
            THEN CAST(coalesce(r.loan_disbursals_last_6_months, 0) AS BIGINT)
    END AS loan_disbursals_last_6_months,
    CASE
        WHEN d.entity_id IS NOT NULL
            THEN CAST(coalesce(r.loan_disbursals_last_6_months_inr, 0) AS DECIMAL(18, 2))
    END AS loan_disbursals_last_6_months_inr,
    w.abb_last_3_complete_months_inr,
    w.abb_last_6_complete_months_inr,
    CASE WHEN d.entity_id IS NOT NULL THEN coalesce(bo.bounces_last_3_months, 0) END
        AS bounces_last_3_months,
    CASE WHEN d.entity_id IS NOT NULL THEN coalesce(bo.bounces_last_6_months, 0) END
        AS bounces_last_6_months,
    CASE WHEN d.entity_id IS NOT NULL THEN coalesce(bo.high_severity_bounces_last_6_months, 0) END
        AS high_severity_bounces_last_6_months,
    CASE
        WHEN d.entity_id IS NOT NULL THEN coalesce(bo.deposited_cheque_returns_last_6_months, 0)
    END AS deposited_cheque_returns_last_6_months,
    CASE WHEN d.entity_id IS NOT NULL THEN coalesce(sa.salary_months, 0) END AS salary_months,
    CASE WHEN d.entity_id IS NOT NULL THEN coalesce(sa.salary_stability, 'none') END
        AS salary_stability,
    sa.salary_amount_unchanged,
    sa.salary_multiple_of_1000,
    ca.cash_deposit_share,
    CASE WHEN d.entity_id IS NOT NULL THEN CAST(coalesce(ba.negative_eod_days, 0) AS BIGINT) END
        AS negative_eod_days,
    ba.od_utilisation,
    coalesce(f.api_fraud_flags, 0) AS api_fraud_flags,
    coalesce(f.api_fraud_types, []) AS api_fraud_types,
    coalesce(s.fraudulent_statement_count, 0) AS fraudulent_statement_count,
    CASE WHEN d.entity_id IS NOT NULL THEN coalesce(br.balance_breaks, 0) END AS balance_breaks
FROM entity AS e
LEFT JOIN account_counts AS a USING (entity_id)
LEFT JOIN statement_counts AS s USING (entity_id)
LEFT JOIN dates AS d USING (entity_id)
LEFT JOIN coverage AS c USING (entity_id)
LEFT JOIN bases AS ib USING (entity_id)
LEFT JOIN windows AS w USING (entity_id)
LEFT JOIN running AS r USING (entity_id)
LEFT JOIN bounces AS bo USING (entity_id)
LEFT JOIN salary AS sa USING (entity_id)
LEFT JOIN cash AS ca USING (entity_id)
LEFT JOIN balances AS ba USING (entity_id)
LEFT JOIN fraud AS f USING (entity_id)
LEFT JOIN breaks AS br USING (entity_id)
ORDER BY e.entity_id
