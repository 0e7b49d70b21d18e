"""Reading input tables in bounded chunks: delimited text, spreadsheets, Parquet."""
