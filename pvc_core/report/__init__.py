"""The run's HTML report: tables and figures that mirror the paper's Table 1 and Figures 2-6."""
