-- PostgreSQL drops the foreign key from submission_values to submissions in this version: its
-- check took a row lock per value. SQLite keeps it: there the check is an in-process B-tree
-- look-up, and dropping a constraint means rebuilding the table. Nothing changes here; the file
-- keeps both backends on the same migration versions.
SELECT 1;
