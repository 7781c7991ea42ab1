"""Speed, memory and accuracy measurements; each script prints a table and writes JSON to results/."""
