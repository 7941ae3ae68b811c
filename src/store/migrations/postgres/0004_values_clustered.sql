-- SQLite rebuilds submission_values and current_reports as tables WITHOUT ROWID in this
-- version, and drops the values' foreign key. PostgreSQL has no such table kind and its foreign
-- key went in 0003. Nothing changes here; the file keeps both backends on the same migration
-- versions.
SELECT 1;
