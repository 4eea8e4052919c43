/* render_text: not written yet */
