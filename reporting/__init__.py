"""Static HTML reports with PNG plots: the pipeline's run report and the benchmark comparison.

- `html`: the page builder (escaped tables, sections, figures as PNG files beside the page);
- `plots`: matplotlib (Agg) figures the reports draw;
- `formatting`: numbers as the pages show them (metrics in percent, changes in points);
- `run_report`: one pipeline run as a page, from plain data the RunReport component loads;
- `comparison`: `benchmarks/compare.py`'s table as a page.

Pages need no network and no JavaScript framework: open `index.html` from disk or serve
its directory as static files.
"""
