/* load: not written yet */
