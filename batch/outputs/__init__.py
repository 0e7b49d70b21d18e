"""Output files that appear whole, the workbook, export from the store, and the dataset root."""
