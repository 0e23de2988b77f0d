"""`make paper`: every table of the paper trained, scored and set beside the paper's numbers."""
