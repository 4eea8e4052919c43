/* mp: not written yet */
