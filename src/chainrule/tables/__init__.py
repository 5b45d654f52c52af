"""Tables: reading CSV files into typed columns, and turning columns into model inputs.

The layer under ``chainrule train``, ``chainrule predict``, the playground's uploads,
:mod:`chainrule.tabular` and the ONNX export; it imports nothing of the command line.

* :mod:`.csv_files` reads a file into a :class:`~.csv_table.CsvTable` (choosing the fast
  pyarrow reader of :mod:`.csv_arrow` or the careful one of :mod:`.csv_table`), reads its
  columns as numbers or text, and writes CSV files atomically;
* :mod:`.preprocessing` is the stored encoding of a model's inputs and target
  (standardised numbers, one-hot text, the imputation), as plain JSON metadata;
* :mod:`.encoding` chooses the feature columns and their encodings, the target's task
  and its encoding, and the loss for the task, from a table's values.

Every problem with a user's table is a :class:`~chainrule.errors.ChainruleError` naming
the file, line and column; the command line prints it as one line (exit status 2) and
the playground returns it as its JSON error.
"""
