/* diff: not written yet */
