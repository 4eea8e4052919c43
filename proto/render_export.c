/* render_export: not written yet */
