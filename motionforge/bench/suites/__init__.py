"""The benchmark suites, one module each: run(suite config, settings) → rows; summary(rows); plots(rows, folder)."""
