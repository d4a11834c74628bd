"""dukpy (the PAC files' JavaScript evaluator, through pypac): its runtime scripts, read from
beside the module at each interpreter's start. Its bundled JavaScript libraries (babel,
typescript, less: 11 MB) are left out: a PAC file needs none of them."""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("dukpy", subdir="jsruntime") + collect_data_files(
    "dukpy", subdir="jscore"
)
