"""What a recommendation is and how it is computed from plain data: candidates, merge, rules,
ranker features and model, the live embedding model and its user-vector recipe. Serving
(``graphrec.engine``) and the offline replay (``gnn.ranking``) run the same functions."""
