"""`member-recon report`: one offline HTML page about a run or a dataset."""
