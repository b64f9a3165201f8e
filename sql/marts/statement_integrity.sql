-- Grain: one row per statement (every statement in statements, failed ones included).
-- Our recomputed checks beside the API's own fraud verdicts. Transactions name their
-- statement only when the account has exactly one, so the statement_* counts are null
-- for statements of an account with several; the account_* counts always apply.

WITH statement_rows AS (
    SELECT
        entity_id,
        statement_id,
        count(*) AS transaction_count,
        arg_min(balance - signed_amount, txn_seq) AS opening_balance,
        arg_max(balance, txn_seq) AS closing_balance,
        sum(amount) FILTER (WHERE transaction_type = 'credit') AS credits,
        sum(amount) FILTER (WHERE transaction_type = 'debit') AS debits
    FROM stg_transactions
    WHERE statement_id IS NOT NULL
    GROUP BY entity_id, statement_id
),

statement_breaks AS (
    SELECT
        entity_id,
        statement_id,
        count(*) AS balance_breaks,
        count(*) FILTER (WHERE flagged_by_api) AS breaks_flagged_by_api
    FROM balance_integrity
    WHERE statement_id IS NOT NULL
    GROUP BY entity_id, statement_id
),

account_breaks AS (
    SELECT entity_id, account_id, count(*) AS account_balance_breaks
    FROM balance_integrity
    GROUP BY entity_id, account_id
),

api_flags AS (
    SELECT
        entity_id,
        statement_id,
        list(DISTINCT fraud_type ORDER BY fraud_type) AS api_fraud_types,
        count(transaction_hash) AS api_flagged_transactions
    FROM fraud_flags
    GROUP BY entity_id, statement_id
)

SELECT
    s.entity_id,
    s.statement_id,
    s.account_id,
    s.status,
    s.message,
    s.is_fraud,
    coalesce(f.api_fraud_types, []) AS api_fraud_types,
    coalesce(f.api_flagged_transactions, 0) AS api_flagged_transactions,
    r.transaction_count,
    CASE WHEN r.statement_id IS NOT NULL THEN coalesce(b.balance_breaks, 0) END AS balance_breaks,
    CASE WHEN r.statement_id IS NOT NULL THEN coalesce(b.breaks_flagged_by_api, 0) END
        AS breaks_flagged_by_api,
    coalesce(a.account_balance_breaks, 0) AS account_balance_breaks,
    CAST(r.opening_balance AS DECIMAL(18, 2)) AS opening_balance_inr,
    CAST(r.closing_balance AS DECIMAL(18, 2)) AS closing_balance_inr,
    CAST(CASE WHEN r.statement_id IS NOT NULL THEN coalesce(r.credits, 0) END AS DECIMAL(18, 2))
        AS credits_inr,
    CAST(CASE WHEN r.statement_id IS NOT NULL THEN coalesce(r.debits, 0) END AS DECIMAL(18, 2))
        AS debits_inr,
    CAST(
        r.closing_balance - (r.opening_balance + coalesce(r.credits, 0) - coalesce(r.debits, 0))
        AS DECIMAL(18, 2)
    ) AS balance_drift_inr
FROM statements AS s
LEFT JOIN statement_rows AS r USING (entity_id, statement_id)
LEFT JOIN statement_breaks AS b USING (entity_id, statement_id)
LEFT JOIN account_breaks AS a USING (entity_id, account_id)
LEFT JOIN api_flags AS f USING (entity_id, statement_id)
ORDER BY s.entity_id, s.statement_id
