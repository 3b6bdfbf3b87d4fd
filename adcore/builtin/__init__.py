"""adcore's own plugin (``core``): registered through the same hooks as any third party."""
