"""Several Docker engines as one pool of nodes: what a node is (`spec`), and where a job
goes (`placement`). The executor over them is `executors/nodes.py`."""
