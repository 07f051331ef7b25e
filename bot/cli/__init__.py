"""The acrcheck command line: parser and dispatch (main), live checks, serve."""
