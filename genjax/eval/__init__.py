"""Layer 4: evaluation. Measures on arrays (``measures``), the cached feature classifier they use on
images (``classifier``), a trained state's evaluation built from its family's capabilities
(``evaluate``), figures (``figures``, drawn by ``plots``) and the comparison report (``report``)."""
