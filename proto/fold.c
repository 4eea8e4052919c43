/* fold: not written yet */
