-- Grain: one row per bounce event: a returned auto-debit or cheque, with its charge when there is one.
-- Signals are de-duplicated by account, date and amount; then, per account, day and family
-- (auto_debit or cheque), the n-th return pairs with the n-th charge in statement order, so
-- a reversal shown with its return charge is one event, and a charge alone is one too.

WITH signals AS (
    SELECT * FROM stg_bounce_signals
),

returns AS (
    SELECT
        entity_id,
        account_id,
        txn_date,
        family,
        amount,
        min(txn_seq) AS first_seq,
        arg_min(hash, txn_seq) AS hash,
        arg_min(transaction_type, txn_seq) AS transaction_type,
        arg_min(transaction_note, txn_seq) AS transaction_note,
        arg_min(reason, txn_seq) AS reason
    FROM signals
    WHERE role = 'return'
    GROUP BY entity_id, account_id, txn_date, family, amount
),

charges AS (
    SELECT
        entity_id,
        account_id,
        txn_date,
        family,
        amount,
        min(txn_seq) AS first_seq,
        arg_min(hash, txn_seq) AS hash,
        arg_min(transaction_note, txn_seq) AS transaction_note,
        arg_min(reason, txn_seq) AS reason,
        bool_or(insufficient_funds_charge) AS insufficient_funds_charge
    FROM signals
    WHERE role = 'charge'
    GROUP BY entity_id, account_id, txn_date, family, amount
),

numbered_returns AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY entity_id, account_id, txn_date, family ORDER BY first_seq, hash
        ) AS n
    FROM returns
),

numbered_charges AS (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY entity_id, account_id, txn_date, family ORDER BY first_seq, hash
        ) AS n
    FROM charges
),

paired AS (
    SELECT
        coalesce(r.entity_id, c.entity_id) AS entity_id,
        coalesce(r.account_id, c.account_id) AS account_id,
        coalesce(r.txn_date, c.txn_date) AS event_date,
        coalesce(r.family, c.family) AS family,
        coalesce(r.n, c.n) AS n,
        r.amount AS bounced_amount,
        r.transaction_type AS return_type,
        r.hash AS return_hash,
        c.amount AS charge_amount,
        c.hash AS charge_hash,
        c.insufficient_funds_charge,
        coalesce(r.transaction_note, c.transaction_note) AS transaction_note,
        CASE
            WHEN 'insufficient_funds' IN (r.reason, c.reason) THEN 'insufficient_funds'
            WHEN 'technical' IN (r.reason, c.reason) THEN 'technical'
            ELSE 'unspecified'
        END AS reason
    FROM numbered_returns AS r
    FULL OUTER JOIN numbered_charges AS c
        ON r.entity_id = c.entity_id
        AND r.account_id = c.account_id
        AND r.txn_date = c.txn_date
        AND r.family = c.family
        AND r.n = c.n
),

typed AS (
    SELECT
        *,
        CASE
            WHEN family = 'auto_debit' THEN 'auto_debit'
            WHEN return_type = 'credit' OR insufficient_funds_charge THEN 'cheque_issued'
            WHEN return_type = 'debit' THEN 'cheque_deposited'
            ELSE 'cheque'
        END AS event_type
    FROM paired
)

SELECT
    md5(concat_ws('|', entity_id, account_id, CAST(event_date AS VARCHAR), family, CAST(n AS VARCHAR)))
        AS event_id,
    entity_id,
    account_id,
    event_date,
    CAST(date_trunc('month', event_date) AS DATE) AS month,
    event_type,
    CASE event_type
        WHEN 'auto_debit' THEN 'high'
        WHEN 'cheque_issued' THEN 'high'
        WHEN 'cheque' THEN 'medium'
        ELSE 'low'
    END AS severity,
    reason,
    CAST(bounced_amount AS DECIMAL(18, 2)) AS bounced_amount_inr,
    CAST(charge_amount AS DECIMAL(18, 2)) AS charge_inr,
    return_hash,
    charge_hash,
    transaction_note
FROM typed
ORDER BY entity_id, account_id, event_date, event_id
