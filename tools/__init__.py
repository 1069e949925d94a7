"""Tools around the program: the offline plan, the mock engine runner, the analyzer client, schema checks."""
