-- Grain: one row per running-balance break: a transaction whose balance is not the previous row's balance plus or minus its amount (beyond 0.01).
-- Rows are compared in txn_seq order within the account. A break right after a txn_seq gap
-- may only mean the row in between is in quarantine (after_seq_gap); one across calendar
-- months no statement covers only means a statement is missing (after_statement_gap: a
-- month between the two rows is not among the account's listed months, or, with none
-- listed, the rows are over 31 days apart). Beside each break: its statement's break
-- count and the API's own fraud verdicts.

WITH ordered AS (  -- the sort carries only what the check needs; the rest joins back
    SELECT
        k.account_key,
        t.txn_seq,
        t.balance,
        t.signed_amount,
        lag(t.txn_seq) OVER w AS previous_txn_seq,
        lag(t.balance) OVER w AS previous_balance,
        lag(t.txn_date) OVER w AS previous_txn_date
    FROM stg_transactions AS t
    INNER JOIN stg_account_keys AS k USING (entity_id, account_id)
    WINDOW w AS (PARTITION BY k.account_key ORDER BY t.txn_seq)
),

break_rows AS (
    SELECT
        k.entity_id,
        k.account_id,
        o.txn_seq,
        o.previous_txn_seq,
        o.previous_txn_date,
        o.previous_balance,
        o.previous_balance + o.signed_amount AS expected_balance
    FROM ordered AS o
    INNER JOIN stg_account_keys AS k USING (account_key)
    WHERE o.previous_balance IS NOT NULL
        AND abs(o.balance - (o.previous_balance + o.signed_amount)) > 0.01
),

breaks AS (
    SELECT
        b.*,
        t.statement_id,
        t.hash,
        t.txn_date,
        t.transaction_type,
        t.amount,
        t.balance
    FROM break_rows AS b
    INNER JOIN stg_transactions AS t USING (entity_id, account_id, txn_seq)
),

flagged AS (  -- the API's flag names the statement, which a row of a multi-statement account lacks
    SELECT entity_id, transaction_hash AS hash, min(statement_id) AS flagged_statement_id
    FROM fraud_flags
    WHERE transaction_hash IS NOT NULL
    GROUP BY entity_id, transaction_hash
),

named AS (
    SELECT
        b.* EXCLUDE (statement_id),
        coalesce(b.statement_id, f.flagged_statement_id) AS statement_id,
        f.hash IS NOT NULL AS flagged_by_api
    FROM breaks AS b
    LEFT JOIN flagged AS f USING (entity_id, hash)
),

statement_verdicts AS (
    SELECT entity_id, statement_id, is_fraud
    FROM statements
),

coverage AS (
    SELECT entity_id, account_id, listed_months
    FROM stg_account_periods
)

SELECT
    b.entity_id,
    b.account_id,
    b.statement_id,
    b.txn_seq,
    b.hash,
    b.txn_date,
    b.previous_txn_seq,
    b.previous_txn_date,
    CAST(b.previous_balance AS DECIMAL(18, 2)) AS previous_balance_inr,
    b.transaction_type,
    CAST(b.amount AS DECIMAL(18, 2)) AS amount_inr,
    CAST(b.balance AS DECIMAL(18, 2)) AS balance_inr,
    CAST(b.expected_balance AS DECIMAL(18, 2)) AS expected_balance_inr,
    CAST(b.balance - b.expected_balance AS DECIMAL(18, 2)) AS difference_inr,
    b.txn_seq - b.previous_txn_seq > 1 AS after_seq_gap,
    CASE
        WHEN len(c.listed_months) = 0 THEN b.txn_date - b.previous_txn_date > 31
        ELSE len(
            list_filter(
                generate_series(
                    date_trunc('month', b.previous_txn_date) + INTERVAL 1 MONTH,
                    date_trunc('month', b.txn_date) - INTERVAL 1 MONTH,
                    INTERVAL 1 MONTH
                ),
                lambda m: NOT list_contains(c.listed_months, strftime(m, '%Y-%m'))
            )
        ) > 0
    END AS after_statement_gap,
    b.flagged_by_api,
    count(*) OVER (PARTITION BY b.entity_id, b.account_id, b.statement_id) AS statement_breaks,
    s.is_fraud AS statement_is_fraud
FROM named AS b
LEFT JOIN statement_verdicts AS s USING (entity_id, statement_id)
LEFT JOIN coverage AS c USING (entity_id, account_id)
ORDER BY b.entity_id, b.account_id, b.txn_seq
