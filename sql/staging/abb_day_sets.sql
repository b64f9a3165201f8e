-- Grain: one row per fixed-day ABB day set and day of the month it samples.
-- materialized: table
-- The parameter table of the fixed-day ABB forms. day_of_month 31 means the month's last
-- day, and any day past a short month's end falls on its last day ("30th" is 28 February).
-- Changing a set's days changes account_monthly's abb_<day_set>_inr; a new set also needs
-- its column there.

SELECT day_set, day_of_month
FROM (
    VALUES
        ('5_15_25_last', 5),
        ('5_15_25_last', 15),
        ('5_15_25_last', 25),
        ('5_15_25_last', 31),
        ('1_5_10_15_20_25_last', 1),
        ('1_5_10_15_20_25_last', 5),
        ('1_5_10_15_20_25_last', 10),
        ('1_5_10_15_20_25_last', 15),
        ('1_5_10_15_20_25_last', 20),
        ('1_5_10_15_20_25_last', 25),
        ('1_5_10_15_20_25_last', 31)
) AS day_sets (day_set, day_of_month)
