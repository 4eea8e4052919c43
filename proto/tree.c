/* tree: not written yet */
