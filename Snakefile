# karyoflow: reproducible chromosome image analysis.
#
#   snakemake --cores 2                      # default synthetic run (profiles/default)
#   snakemake --cores 2 --configfile config/examples/taichung_voc.yaml
#
# The rules below read like a table of contents; all logic is in the karyoflow package.


from snakemake.utils import min_version, validate

min_version("9.0")


# The default config applies only when none is given on the command line: a
# --configfile replaces it rather than being merged into it (dataset lists would mix);
# --config key=value still overrides single keys of whichever config is in use.
if not workflow.overwrite_configfiles:

    configfile: f"{workflow.basedir}/config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/synth.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/detect.smk"
include: "workflow/rules/centromere.smk"
include: "workflow/rules/overlaps.smk"
include: "workflow/rules/predict.smk"


onstart:
    mlflow_start()


onsuccess:
    mlflow_end("FINISHED")


onerror:
    mlflow_end("FAILED")


rule all:
    default_target: True
    input:
        all_outputs(),
