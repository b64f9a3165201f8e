-- Grain: one row per transaction that signals a bounce: a returned payment or a bounce charge.
-- Classified by direction plus description, not by the channel label alone (the vendor's
-- docs contradict themselves on inward and outward cheque bounces).

WITH classified AS (
    SELECT
        entity_id,
        account_id,
        txn_seq,
        hash,
        txn_date,
        transaction_type,
        amount,
        transaction_note,
        CASE
            WHEN description = 'ach_bounce_charge'
                OR transaction_channel = 'auto_debit_payment_bounce' THEN 'auto_debit'
            WHEN description IN ('chq_bounce_charge', 'chq_bounce_insuff_funds')
                OR transaction_channel IN ('inward_cheque_bounce', 'outward_cheque_bounce') THEN 'cheque'
        END AS family,
        CASE
            WHEN description IN ('ach_bounce_charge', 'chq_bounce_charge', 'chq_bounce_insuff_funds')
                THEN 'charge'
            ELSE 'return'
        END AS role,
        CASE
            WHEN description = 'chq_bounce_insuff_funds'
                OR regexp_matches(transaction_note, '(?i)insuff|exceeds arrangement')
                THEN 'insufficient_funds'
            WHEN regexp_matches(
                transaction_note,
                '(?i)technical|signature|mismatch|mandate|stale|alteration'
            ) THEN 'technical'
            ELSE 'unspecified'
        END AS reason,
        description = 'chq_bounce_insuff_funds' AS insufficient_funds_charge
    FROM stg_marked_transactions
    WHERE description IN ('ach_bounce_charge', 'chq_bounce_charge', 'chq_bounce_insuff_funds')
        OR transaction_channel IN (
            'auto_debit_payment_bounce', 'inward_cheque_bounce', 'outward_cheque_bounce'
        )
)

SELECT * FROM classified
