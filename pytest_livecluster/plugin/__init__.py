"""The pytest plugin (layer: plugin, the top).

=================== ===========================================================
:mod:`.hooks`       the entry point pytest loads: options, markers, fixtures;
                    thin, and light to import
:mod:`.hookspecs`   the hooks other plugins and ``conftest.py`` files implement
:mod:`.options`     each flag paired with an ini key, read with one precedence
:mod:`.config`      the settings, validated once
:mod:`.run`         ``LiveRun``: one run against the cluster (``--live-cluster``)
:mod:`.watch`       watch mode (``--live-watch``)
:mod:`.outcomes`    how live tests ended, for alerts and watch rounds
:mod:`.xdist`       the xdist controller's side
:mod:`.report`      the run report: dataclasses and their renderers
=================== ===========================================================
"""
