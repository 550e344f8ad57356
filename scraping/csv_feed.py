"""The spiders' CSV feed exporter: Scrapy's own, with each cell neutralised like every CSV the project writes.

Titles and credits come from the pages crawled; a cell a spreadsheet would run as a formula gets a leading
single quote (see :mod:`infra.csv_files`), which :func:`scraping.items.read_items` removes again.
"""
from __future__ import annotations

from scrapy.exporters import CsvItemExporter

from infra.csv_files import csv_cell


class FormulaSafeCsvItemExporter(CsvItemExporter):
    def serialize_field(self, field, name, value):
        return csv_cell(super().serialize_field(field, name, value))
