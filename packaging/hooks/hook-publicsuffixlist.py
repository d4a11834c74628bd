"""publicsuffixlist (WPAD's climb up the DNS domain, through pypac): its list, a data file."""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("publicsuffixlist", includes=["*.dat"])
