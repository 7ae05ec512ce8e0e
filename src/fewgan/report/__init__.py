"""Showing the work of a run: plots (:mod:`~fewgan.report.plots`), the self-contained HTML report
(:mod:`~fewgan.report.html`, ``fewgan report RUN``) and the end-to-end demo
(:mod:`~fewgan.report.demo`, ``fewgan demo``). Everything here renders from the files of a run
folder only, so a report can be rewritten at any time, on any machine that has the folder."""
