"""Showing the work of a run: plots (:mod:`~fewgan.report.plots`, the scale figure included) and the
self-contained HTML report (:mod:`~fewgan.report.html`, ``fewgan report RUN``). Everything here
renders from the files of a run folder only, so a report can be rewritten at any time, on any
machine that has the folder. (The end-to-end demo is :mod:`fewgan.pipeline`, above the API.)"""
