"""Large-area reprocessing campaigns on a Dask client, resumable.

- :mod:`~firesmoke.campaign.spec`: the TOML spec, parsed and validated
  (:mod:`~firesmoke.campaign.fields` holds the field validators);
- :mod:`~firesmoke.campaign.plan`: a spec -> work units (region x product x period x block);
- :mod:`~firesmoke.campaign.worker`: one unit on a worker (read, predict, write);
- :mod:`~firesmoke.campaign.run`: submit, resume, export;
- :mod:`~firesmoke.campaign.report`: what a run did, skipped or failed.
"""
