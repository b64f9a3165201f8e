-- Grain: one row per account with transactions, numbered: a compact key for the large sorts and groupings.
-- materialized: table
-- Windows and groupings over millions of rows partition on this BIGINT several times
-- faster than on two VARCHAR ids. The key lives only inside a refresh; no mart shows it.

SELECT
    entity_id,
    account_id,
    row_number() OVER (ORDER BY entity_id, account_id) AS account_key
FROM (
    SELECT entity_id, account_id
    FROM transactions
    GROUP BY entity_id, account_id
)
